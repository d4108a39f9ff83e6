//! Dev/test double of the Atlas Admin API (filled in by the emulator work).
