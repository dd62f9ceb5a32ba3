"""The engine every method runs in: ``base`` (hook points), ``loop`` (the search), ``run`` (a run
directory's start and resume), ``options`` (typed method options), ``adapters`` (space adapters)."""
