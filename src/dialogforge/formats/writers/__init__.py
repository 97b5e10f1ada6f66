"""Writers: Conversation -> rows of one training format."""
