"""Network architectures, model files and the model library.

Each architecture module (``compact``, ``drunet``, ``discriminator``) defines the network, a
``detect(state_dict, hints)`` that recognises its own weights and returns a :class:`ModelSpec`
(``hints`` answer what the weights cannot tell, see :class:`~engine.models.spec.Hints`), and a
``build(spec)`` that instantiates it. ``files`` reads and writes model files; ``library`` manages
``ARCHIVIST_HOME/models``.
"""
