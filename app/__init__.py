"""gridscore's serving side: the scoring API and the dashboard.

Nothing under ``app`` imports scikit-learn, skl2onnx or the ``convert`` package: the serving
image carries onnxruntime and numpy only.
"""
