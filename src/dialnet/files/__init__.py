"""Files: the model file (safetensors + JSON), checkpoints, PyTorch state_dicts and ONNX.

Imports core (to rebuild networks) and data (the preprocessing stored with a model).
"""
