"""The treatment a session gives: what must hold before it (the foot-care checklist) and which
program it runs (`programs`). The session that runs it is `controller.service.runner`; the
user's command is ``soleguard session``."""
