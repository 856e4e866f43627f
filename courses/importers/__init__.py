"""Importers from other exchanges: nbgrader's filesystem exchange (``fs``) and ngshare
(``ngshare``). Each reads its source into ``common.CourseSource`` objects; ``common``
stores their files in the blob store and records them through ``courses.services``."""
