"""Dataset readers: NTU `.skeleton` files, missing-sample lists, Kinetics-skeleton JSON, OpenPose JSON folders."""
from .kinetics import KineticsFormatError, KineticsVideo, read_kinetics_labels, read_kinetics_video
from .missing import read_missing_list
from .ntu import NtuSampleId, NtuSkeleton, SkeletonFormatError, parse_sample_name, read_skeleton
from .openpose import OpenPoseSequence, read_openpose_folder

__all__ = ["read_skeleton", "parse_sample_name", "NtuSkeleton", "NtuSampleId", "SkeletonFormatError",
           "read_missing_list", "read_kinetics_video", "read_kinetics_labels", "KineticsVideo", "KineticsFormatError",
           "read_openpose_folder", "OpenPoseSequence"]
