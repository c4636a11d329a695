"""Plausible student mistakes in ps1 and the test cells each must fail (format: see harness.py).

``visible`` pins whether the quick checks (what ``nbgrader validate`` shows) catch the bug.
"""

BUGS = [
    dict(name="pca-forgot-to-centre", cell="pca_svd",
         find="Xc = X - mean", replace="Xc = X",
         loses=["test_pca_svd_subspace", "test_pca_svd_eigenvalues"], visible=True),
    dict(name="pca-components-wrong-axis", cell="pca_svd",
         find="components = Vt[:d]", replace="components = Vt[:, :d].T",
         loses=["test_pca_svd_subspace"], visible=True),
    dict(name="pca-eigenvalues-over-m-minus-1", cell="pca_svd",
         find="eigenvalues = s[:d] ** 2 / m", replace="eigenvalues = s[:d] ** 2 / (m - 1)",
         loses=["test_pca_svd_eigenvalues"], visible=True),
    dict(name="pca-eigenvalues-ascending", cell="pca_svd",
         find="eigenvalues = s[:d] ** 2 / m", replace="eigenvalues = np.sort(s[:d] ** 2 / m)",
         loses=["test_pca_svd_eigenvalues"], visible=True),
    dict(name="pca-delegates-to-scikit-learn", cell="pca_svd",
         find=("_, s, Vt = np.linalg.svd(Xc, full_matrices=False)\n    components = Vt[:d]\n"
               "    eigenvalues = s[:d] ** 2 / m"),
         replace=("from sklearn.decomposition import PCA\n    fitted = PCA(d).fit(X)\n"
                  "    components = fitted.components_\n"
                  "    eigenvalues = fitted.explained_variance_ * (m - 1) / m"),
         loses=["test_pca_svd_subspace", "test_pca_svd_eigenvalues"], visible=True),
    dict(name="angles-not-orthonormalised", cell="principal_angles",
         find="Q_A, _ = np.linalg.qr(A)\n    Q_B, _ = np.linalg.qr(B)", replace="Q_A, Q_B = A, B",
         loses=["test_principal_angles_values"], visible=True),
    dict(name="angles-complete-qr", cell="principal_angles",
         find="Q_A, _ = np.linalg.qr(A)\n    Q_B, _ = np.linalg.qr(B)",
         replace=('Q_A, _ = np.linalg.qr(A, mode="complete")\n'
                  '    Q_B, _ = np.linalg.qr(B, mode="complete")'),
         loses=["test_principal_angles_values", "test_principal_angles_order"], visible=True),
    dict(name="angles-in-degrees", cell="principal_angles",
         find="return np.arccos(np.clip(cosines, -1.0, 1.0))",
         replace="return np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))",
         loses=["test_principal_angles_values", "test_principal_angles_order"], visible=True),
    dict(name="angles-descending", cell="principal_angles",
         find="return np.arccos(np.clip(cosines, -1.0, 1.0))",
         replace="return np.arccos(np.clip(cosines, -1.0, 1.0))[::-1]",
         loses=["test_principal_angles_order"], visible=True),
    dict(name="train-sigmoid-decoder", cell="train_linear_ae",
         find='g="linear", f="linear"', replace='g="linear", f="sigmoid"',
         loses=["test_train_linear_ae_loss", "test_train_linear_ae_subspace"], visible=True),
    # The two below reach a loss within 0.1 % of PCA's on the digits, but not its subspace.
    dict(name="train-too-few-epochs", cell="train_linear_ae",
         find="epochs=20", replace="epochs=5",
         loses=["test_train_linear_ae_loss", "test_train_linear_ae_subspace"], visible=True),
    dict(name="train-lbfgs-with-adams-lr", cell="train_linear_ae",
         find="epochs=20, lr=1.0,", replace="epochs=20,",
         loses=["test_train_linear_ae_loss", "test_train_linear_ae_subspace"], visible=True),
    dict(name="compare-angle-in-radians", cell="compare_with_pca",
         find="max_angle_deg = np.degrees(principal_angles(W_star, components[:d].T).max())",
         replace="max_angle_deg = principal_angles(W_star, components[:d].T).max()",
         loses=["test_compare_angle"], visible=True),
    dict(name="compare-kept-eigenvalues-as-loss", cell="compare_with_pca",
         find="pca_loss = eigenvalues[d:].sum()", replace="pca_loss = eigenvalues[:d].sum()",
         loses=["test_compare_losses"], visible=True),
    dict(name="compare-loss-mean-over-all-entries", cell="compare_with_pca",
         find="ae_loss = ((X_hat - X) ** 2).sum(axis=1).mean()",
         replace="ae_loss = ((X_hat - X) ** 2).mean()",
         loses=["test_compare_losses"], visible=True),
]
