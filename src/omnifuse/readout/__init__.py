"""The linear read-out: a strongly regularised logistic regression on encoders' fixed summary features,
fitted in closed form after training and blended with the trained head (README, "Defaults and why")."""
