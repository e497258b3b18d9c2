"""Taking a model out of deepfit: ONNX, TorchScript, ExportedProgram or safetensors, with
its preprocessing inside, an input schema and a model card (see docs/deploy.md)."""

from deepfit.export.export_run import Exported, export_run
from deepfit.export.formats import FORMATS

__all__ = ["Exported", "FORMATS", "export_run"]
