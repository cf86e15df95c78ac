// Decoding of state-directory documents (to be written).
