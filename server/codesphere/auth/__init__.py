"""Who may connect and what they may do: signed tokens and the secret that signs them."""
