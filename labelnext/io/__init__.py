"""What goes to disk: atomic writes and staged folders, label sheets (CSV, Label Studio), reports and figures."""
