"""The foot-care journal (issue 6): diary rules, history rows, report data and drawing, export.

Modules: :mod:`.blocks` (what blocks a session, and the refusal's wording), :mod:`.diary`
(inspection alerts), :mod:`.history`, :mod:`.report_data`
(pure series), :mod:`.render` (matplotlib, imported lazily), :mod:`.export` (JSON/CSV),
:mod:`.commandline` (shared CLI pieces). Nothing here is imported by ``soleguard --help``.
"""
