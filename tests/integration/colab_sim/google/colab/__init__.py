"""A stand-in for Colab's ``google.colab`` package, for the offline Colab simulation test.

Only what the course touches is here: the module exists (the notebooks' ``colab-setup`` cell
tests ``"google.colab" in sys.modules``) and :mod:`google.colab._message` hands over the open
notebook (``mlcourse.submit``). There is deliberately no ``google/__init__.py``: on Colab, as
here, ``google`` is a namespace package shared with ``google.protobuf`` and others.
"""

__version__ = "0.0.1+colab-sim"
