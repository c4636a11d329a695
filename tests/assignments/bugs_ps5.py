"""Plausible student mistakes in ps5 and the test cells each must fail (format: see harness.py)."""

BUGS = [
    # KNOWN GAP of aecourse grade: arguments reach the student's process by value, so a change of
    # X in place there is invisible to the test in the grader, and this bug keeps its point
    # (plain nbgrader, one kernel, takes it). Sending changed arrays back is the next step.
    dict(name="corrupt-in-place", cell="corrupt",
         find="X_tilde = X.copy()", replace="X_tilde = X",
         loses=[]),
    dict(name="corrupt-unseeded", cell="corrupt",
         find="rng = np.random.default_rng(random_state)", replace="rng = np.random.default_rng()",
         loses=["test_corrupt_seeded"]),
    dict(name="mask-keeps-with-probability-p", cell="corrupt",
         find="X_tilde[rng.random(X.shape) < level] = 0.0",
         replace="X_tilde[rng.random(X.shape) >= level] = 0.0",
         loses=["test_corrupt_statistics"]),
    dict(name="gaussian-level-as-variance", cell="corrupt",
         find="X_tilde += level * rng.standard_normal(X.shape)",
         replace="X_tilde += level ** 2 * rng.standard_normal(X.shape)",
         loses=["test_corrupt_statistics"]),
    dict(name="salt-and-pepper-only-salt", cell="corrupt",
         find="X_tilde[hit & ~salt] = 0.0", replace="X_tilde[hit & ~salt] = 1.0",
         loses=["test_corrupt_statistics"]),
    dict(name="denoising-forgot-to-corrupt", cell="train_denoising",
         find="corrupt=corrupt_batch,", replace="corrupt=None,",
         loses=["test_train_denoising"]),
    dict(name="contractive-forgot-square", cell="contractive_penalty",
         find="per_example = ((h * (1 - h)) ** 2 * row_norms).sum(axis=1)",
         replace="per_example = (h * (1 - h) * row_norms).sum(axis=1)",
         loses=["test_contractive_values"]),
    dict(name="contractive-sum-over-examples", cell="contractive_penalty",
         find="return float(per_example.mean())", replace="return float(per_example.sum())",
         loses=["test_contractive_values", "test_contractive_mean_over_examples"]),
    dict(name="rescale-forgot-bias", cell="rescale_encoder",
         find='"b": eps * params["b"]', replace='"b": params["b"]',
         loses=["test_rescale_keeps_reconstruction"]),
    dict(name="rescale-decoder-times-eps", cell="rescale_encoder",
         find='"W_star": params["W_star"] / eps', replace='"W_star": params["W_star"] * eps',
         loses=["test_rescale_keeps_reconstruction"]),
    dict(name="rescale-directions-swapped", cell="rescale_encoder",
         find='return {"W": eps * params["W"], "b": eps * params["b"],\n'
              '            "W_star": params["W_star"] / eps,',
         replace='return {"W": params["W"] / eps, "b": params["b"] / eps,\n'
                 '            "W_star": eps * params["W_star"],',
         loses=["test_rescale_shrinks_penalty"]),
]
