"""Running an exported image model as its user would: onnxruntime for ONNX, torch for
TorchScript and ExportedProgram; returns ``call(uint8 NCHW array) -> numpy``."""

import onnxruntime as ort
import torch


def image_model_call(done, fmt):
    if fmt == "onnx":
        session = ort.InferenceSession(str(done.model), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
        return lambda x: session.run(None, {"images": x})[0]
    loaded = (torch.jit.load(str(done.model)) if fmt == "torchscript"
              else torch.export.load(str(done.model)).module())
    return lambda x: loaded(torch.from_numpy(x)).numpy()
