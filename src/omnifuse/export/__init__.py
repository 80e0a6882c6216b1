"""Export of trained models to other runtimes (ONNX) and the runtime backends that run them.

Import the submodules (``omnifuse.export.onnx``, ``omnifuse.export.backend``, ``omnifuse.export.attach``)
where they are needed: they import onnx / onnxruntime lazily, so ``import omnifuse`` stays light.
"""
