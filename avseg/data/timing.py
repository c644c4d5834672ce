"""AVSBench's sampling rule, shared by the readers, the video decoder and the synthetic scenes
(its own module so that :mod:`avseg.data.video` need not import :mod:`avseg.data.base`)."""

#: frame ``i`` of an AVSBench clip is sampled at ``i + 15/16`` seconds (the end of second ``i``)
FRAME_OFFSET = 15.0 / 16.0
