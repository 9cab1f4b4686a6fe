"""fastMRI files: reading and validating real folders; writing simulated ones (synthetic phantoms, imported
magnitude images, the MNI152 template) by one k-space simulation."""

from mri_rl.data.anatomy import write_anatomy_dataset
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
from mri_rl.data.image_import import ImportSettings, import_images
from mri_rl.data.image_sources import ImageImportError
from mri_rl.data.simulated_kspace import SimulationSpec
from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset
from mri_rl.kspace import KspaceGeometry

__all__ = [
    "CHALLENGES",
    "SPLITS",
    "TARGET_KEYS",
    "FastMRIDataError",
    "FastMRISliceDataset",
    "ImageImportError",
    "ImportSettings",
    "KspaceGeometry",
    "KspaceSlice",
    "SimulationSpec",
    "SliceMetadata",
    "SyntheticSpec",
    "VolumeInfo",
    "import_images",
    "inspect_volume",
    "list_volumes",
    "resolve_split_folder",
    "write_anatomy_dataset",
    "write_synthetic_dataset",
    "write_volume",
]
