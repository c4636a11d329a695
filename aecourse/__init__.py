"""aecourse: the small library behind the autoencoder course.

One concept per module; the book's chapters and the assignments import from here.

==============  =========================================================  ========
module          holds                                                      chapter
==============  =========================================================  ========
``data``        offline loaders (digits, MNIST subset, patches, toys)      all
``models``      one-hidden-layer and hourglass autoencoders (PyTorch),     1-7
                and the bridge to and from NumPy parameters
``losses``      squared error, cross-entropy, sparsity, contractive, the   4, 6, 9
                Gaussian KL
``corruption``  masking, Gaussian and salt-and-pepper noise                6b
``scratch``     NumPy forward/backward with one generic backward           5, 6a
``gradcheck``   centred finite differences and ``rel_error``               5, 6
``pca``         PCA by SVD and principal angles                            2
``train``       ``fit``: one readable minibatch loop                       2-7
``plots``       image grids, reconstructions, filters, codes, curves       all
``conv``        a convolutional autoencoder and convolution size formulas  8
``vae``         the variational autoencoder, reparameterisation, ELBO      9
``anomaly``     reconstruction error as anomaly score, AUROC               9
``grading``     the assignments' hidden-test helpers                       ps1-ps6
``grader``      ``aecourse grade``: the class grader (a subpackage)        guide
==============  =========================================================  ========
"""

__version__ = "0.1.0"
