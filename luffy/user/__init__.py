"""Users, SMS verification codes and mobile login."""
