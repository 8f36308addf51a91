"""The segmend desktop application and napari plugin (PySide6 + napari).

Everything here depends on :mod:`app.model`, never the reverse.  Kernel and
HDF5 work runs on a ``QThreadPool`` (:mod:`app.ui.workers`); results come back
to the GUI thread by Qt signals.  Entry points:

- :func:`app.ui.main.run_app` -- ``segmend [FILE] [--screenshot OUT.png]``;
- ``app/napari.yaml`` -- the napari plugin (:mod:`app.ui.plugin`).
"""
