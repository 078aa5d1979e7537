"""The bottom layer: small pieces every app may use, which import no app of this project."""
