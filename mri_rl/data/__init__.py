"""fastMRI files: reading and validating real folders, writing synthetic ones."""

from mri_rl.data.fastmri_files import (
    CHALLENGES,
    SPLITS,
    TARGET_KEYS,
    FastMRIDataError,
    FastMRISliceDataset,
    KspaceSlice,
    SliceMetadata,
    VolumeInfo,
    inspect_volume,
    list_volumes,
    resolve_split_folder,
    write_volume,
)
from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset
from mri_rl.kspace import KspaceGeometry

__all__ = [
    "CHALLENGES",
    "SPLITS",
    "TARGET_KEYS",
    "FastMRIDataError",
    "FastMRISliceDataset",
    "KspaceGeometry",
    "KspaceSlice",
    "SliceMetadata",
    "SyntheticSpec",
    "VolumeInfo",
    "inspect_volume",
    "list_volumes",
    "resolve_split_folder",
    "write_synthetic_dataset",
    "write_volume",
]
