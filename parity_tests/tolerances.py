"""Every tolerance of the parity suite, each with the reason for its size (float32 on CPU)."""

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
