"""Readers of the small real datasets (MSR Action3D, Florence 3D, NATOPS) and of user datasets, written as
generated datasets (`{split}_data.npy`, `{split}_label.pkl`, `{split}_meta.json`) through `training.gendata`."""
from .common import RawSample, resample, write_benchmark
from .custom import CustomProtocol, generate_custom, load_custom
from .florence3d import generate_florence3d, load_florence3d
from .msr_action3d import generate_msr_action3d, load_msr_action3d
from .natops import generate_natops, load_natops

__all__ = ["RawSample", "resample", "write_benchmark", "CustomProtocol", "generate_custom", "load_custom",
           "generate_florence3d", "load_florence3d", "generate_msr_action3d", "load_msr_action3d",
           "generate_natops", "load_natops"]
