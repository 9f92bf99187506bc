"""Getting data in: message parsing, Defender/O365 exports, and the demo tenant generator."""
