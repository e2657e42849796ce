"""Operations: plain functions taking plain values and a SQLAlchemy session; no HTTP here."""
