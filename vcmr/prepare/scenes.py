"""Scene statistics of a window with PySceneDetect's ContentDetector, fed with our own frames.

The decoder hands every window frame (downscaled BGR) to :meth:`SceneScanner.feed`; no second
decode of the file is needed. ``feed`` returns True as soon as a scene is proven longer than
``max_scene_s`` so the decoder can stop early (the clip will be dropped anyway).

    scanner = SceneScanner(fps=25, start_s=30.0, end_s=150.0, threshold=27, min_scene_len=15,
                           max_scene_s=30)
    for i, (bgr, t) in enumerate(frames):
        if scanner.feed(bgr, i, t):
            break
    stats = scanner.finish()   # SceneStats(cuts_s=[...], n_scenes, max_scene_s, complete)

PySceneDetect is imported on use: it belongs to the optional ``video`` extra.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SceneScanner", "SceneStats"]


@dataclass
class SceneStats:
    cuts_s: list[float]  # cut times in seconds of the source video, inside the window
    n_scenes: int
    max_scene_s: float
    complete: bool  # False when the scan stopped early on a too-long scene


class SceneScanner:
    def __init__(self, fps: float, start_s: float, end_s: float, threshold: float = 27.0,
                 min_scene_len: int = 15, max_scene_s: float | None = None):
        from scenedetect.detectors import ContentDetector
        self.detector = ContentDetector(threshold=threshold, min_scene_len=int(min_scene_len))
        self.fps = float(fps)
        self.start_s, self.end_s = start_s, end_s
        self.max_scene_s = max_scene_s
        # the merge filter may report a cut up to min_scene_len frames after it happened
        self._lag_s = (min_scene_len + 1) / fps
        self.times: list[float] = []
        self.cuts: list[float] = []
        self.stopped = False
        # Pre-roll: the detector reports no cut within min_scene_len frames of the first frame
        # it sees, which would hide a cut just after the window start. Feeding it that many
        # copies of the first frame (they score 0, so they add no cut) lifts the restriction.
        self._preroll = int(min_scene_len)

    def _timecode(self, index: int):
        from scenedetect import FrameTimecode
        return FrameTimecode(index, self.fps)

    def _add_cuts(self, timecodes) -> None:
        for tc in timecodes:
            i = tc.frame_num - self._preroll
            if 0 < i < len(self.times):
                self.cuts.append(self.times[i])

    def feed(self, bgr: np.ndarray, index: int, time_s: float) -> bool:
        """Process the window's frame ``index`` shown at ``time_s``; True: stop, scene too long."""
        if not self.times:
            for j in range(self._preroll):
                self._add_cuts(self.detector.process_frame(self._timecode(j), bgr))
        self.times.append(time_s)
        self._add_cuts(self.detector.process_frame(self._timecode(index + self._preroll), bgr))
        if self.max_scene_s is None:
            return False
        last = self.cuts[-1] if self.cuts else self.start_s
        if time_s - last > self.max_scene_s + self._lag_s:
            self.stopped = True
        return self.stopped

    def finish(self) -> SceneStats:
        if not self.stopped and self.times:
            self._add_cuts(self.detector.post_process(self._timecode(len(self.times) - 1 + self._preroll)))
        cuts = sorted(set(self.cuts))
        end = self.times[-1] + 1 / self.fps if self.stopped and self.times else self.end_s
        bounds = [self.start_s, *cuts, end]
        lengths = np.diff(bounds)
        return SceneStats(cuts_s=[round(c, 4) for c in cuts], n_scenes=len(bounds) - 1,
                          max_scene_s=round(float(lengths.max()), 3) if len(lengths) else 0.0,
                          complete=not self.stopped)
