"""Every tolerance of the parity suite, each with the reason for its size (float32 on CPU)."""

# How much data each check runs on is part of its tolerance: enough for the tolerance to mean what it
# says, and no more (on a GPU every image, step and epoch is paid in a time budget; see COSTS.md).

# Real images for the logits, gradient and interop-control checks: one evaluation batch. The checks
# take the max over 512 x 10 logits, far into the tail of float32 rounding differences; a porting bug
# changes almost every image's logits, so more images would add time and no power.
REAL_BATCH_IMAGES = 512
# Eval logits of converted weights: both compute the same sums in float32, in different orders
# (oneDNN direct conv vs im2col matmul); logits are O(1-10), float32 eps 1.2e-7 x ~1e3 terms.
LOGITS_ATOL = 1e-5
# Mean cross-entropy of the same logits: a log-sum-exp of 10 numbers, reordered.
LOSS_ATOL = 1e-6
# Gradients: relative to the largest gradient of the tensor (sums over 64 images x positions).
GRAD_RTOL_OF_MAX = 1e-5
# 200 Adam steps from the same init on the same batches: rounding differences grow with the
# number of steps (Adam divides by sqrt(v) ~ |g|, so it amplifies tiny gradient differences).
TRAJECTORY_LOSS_ATOL = 1e-4
TRAJECTORY_PARAM_ATOL = 1e-4
# 200 steps: float64 leaves the frameworks ~1e-15 apart in loss, so the tolerance does not limit the
# count; what does is what the trajectory must exercise: Adam's first moment fully built from the
# run's own gradients (0.9^200 ~ 7e-10 of the start left) while its second-moment bias correction is
# still at work (1 - 0.999^200 = 0.18). Fewer steps would skip the first, far more add nothing.
TRAJECTORY_STEPS = 200
# The negative controls stop once their bug must show: a wrong dropout scale or a batch shuffled
# against its labels changes the loss from the first step (a dropout moved after fc1..fc3 cannot even
# run); 20 steps are a margin. Adam's eps only changes the update of gradient components near its
# size, so that control runs 50 steps.
CONTROL_STEPS = 20
CONTROL_STEPS_ADAM_EPS = 50
# Keep fraction of 1e6 Bernoulli(0.5) draws: std 0.0005, so 0.002 is 4 sigma.
KEEP_FRACTION_ATOL = 0.002
# Correlation of 4096 x 84 independent Bernoulli masks: std ~ 1/sqrt(344k) = 0.0017; 0.01 ~ 6 sigma.
MASK_CORRELATION_MAX = 0.01
# Two-sample Kolmogorov-Smirnov test of a layer's init in Flax vs PyTorch (pooled over seeds).
KS_P_MIN = 0.01
# Checkpoint interop: predictions may differ only where the top two logits are this close
# (float32 rounding of two different summation orders can swap a near-tie).
TOP2_MARGIN = 1e-5
# Learning curves: 3 seeds x 3 epochs on 10,000 images (8,000 train, 2,000 val). The 2,000 val
# images alone put a binomial spread of ~1.1 points on each accuracy (sqrt(0.24 / 2000)); fewer
# images or seeds would make 2 points a coin toss, and fewer epochs would compare only the start.
CURVE_IMAGES, CURVE_SEEDS, CURVE_EPOCHS = 10_000, (0, 1, 2), 3
# Seed-to-seed spread of val accuracy is ~1 point there, so the mean curves must agree within 2 points ...
CURVE_MEAN_ACC_POINTS = 2.0
# ... and a Welch t-test on the final epoch must not tell the frameworks apart at the 1% level.
CURVE_WELCH_P_MIN = 0.01
# TF32 (--precision tf32, GPUs only): matmul and convolution inputs are rounded to a 10-bit mantissa
# (relative error up to 2^-11 = 4.9e-4 per operand, so ~1e-3 per product), then summed in float32;
# over hundreds of terms the errors mostly cancel. Compared relative to the largest value.
TF32_RTOL_OF_MAX = 2e-3

# Framework equivalence of the learning curves (the report's test over seeds, not a parity check): its
# margins (EQUIV_*) and their reasons are in benchmarks/report/margins.py, beside the report that applies
# them, so that an installed report needs no parity suite.
