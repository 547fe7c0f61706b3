"""Forward architecture search: parent choice, growth, and the loop that runs them."""
