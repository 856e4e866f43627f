"""The domain: models and the exchange's operations, which every interface calls."""
