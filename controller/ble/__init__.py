"""BLE: the only part of SoleGuard that imports bleak (links, bonding, and the bumble backend)."""
