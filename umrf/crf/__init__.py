"""Conditional random fields: linear-chain CRFs and mean-field grid CRFs."""

from umrf.crf._chain import (
    ChainMarginals,
    chain_log_likelihood,
    chain_log_partition,
    chain_marginals,
    chain_sample,
    chain_score,
    viterbi,
)
from umrf.crf._loss import crf_negative_log_likelihood
from umrf.crf._mean_field import (
    GridKernels,
    grid_crf_energy,
    grid_mean_field,
    grid_mean_field_free_energy,
    grid_mean_field_update,
    potts_compatibility,
)
from umrf.crf._metrics import mean_iou, q3_accuracy, segment_overlap
from umrf.crf._protein_data import (
    AMINO_ACIDS,
    STATES,
    ProteinData,
    make_protein_dataset,
    residue_distributions,
)
from umrf.crf._segmentation_data import (
    SegmentationData,
    make_segmentation_dataset,
)
from umrf.crf._segmenter import (
    Segmenter,
    SegmenterFit,
    UNet,
    evaluate_segmenter,
    predict_segmentation,
    train_segmenter,
)
from umrf.crf._sequence_labeller import (
    ConvEmitter,
    LabellerFit,
    SequenceLabeller,
    evaluate_labeller,
    train_labeller,
)

__all__ = [
    "AMINO_ACIDS",
    "STATES",
    "ChainMarginals",
    "ConvEmitter",
    "GridKernels",
    "LabellerFit",
    "ProteinData",
    "SegmentationData",
    "Segmenter",
    "SegmenterFit",
    "SequenceLabeller",
    "UNet",
    "chain_log_likelihood",
    "chain_log_partition",
    "chain_marginals",
    "chain_sample",
    "chain_score",
    "crf_negative_log_likelihood",
    "evaluate_labeller",
    "evaluate_segmenter",
    "grid_crf_energy",
    "grid_mean_field",
    "grid_mean_field_free_energy",
    "grid_mean_field_update",
    "make_protein_dataset",
    "make_segmentation_dataset",
    "mean_iou",
    "potts_compatibility",
    "predict_segmentation",
    "q3_accuracy",
    "residue_distributions",
    "segment_overlap",
    "train_labeller",
    "train_segmenter",
    "viterbi",
]
