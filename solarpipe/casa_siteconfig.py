"""CASA site configuration used by solarpipe: offline measures from casadata.

casaconfig executes this file (via the CASASITECONFIG environment variable that
:mod:`solarpipe.casaenv` sets before casatools is first imported). It points CASA
at the measures data shipped in the ``casadata`` wheel and switches off the
automatic downloads, which fail on machines without internet.
A user's own ``~/.casa/config.py`` is read after this file and still wins.
"""
import casadata as _casadata

measurespath = _casadata.datapath
measures_auto_update = False
data_auto_update = False
