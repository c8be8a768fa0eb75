"""Running a trained model without TensorFlow: `Predictor` on its LiteRT export, and the age
intervals and gender temperature (`calibration`) that make its answers honest."""
