"""The tutorial's two networks, with its module names (62,006 parameters each), and RateLeNet: the
same layers with the dropout rate as an input, for the vmap engine."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from experiment.variants import VARIANTS


class BaseLineModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class DropoutModel(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.dropout_1 = nn.Dropout(p)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.dropout_2 = nn.Dropout(p)
        self.fc2 = nn.Linear(120, 84)
        self.dropout_3 = nn.Dropout(p)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(self.dropout_1(x)))
        x = F.relu(self.fc2(self.dropout_2(x)))
        return self.fc3(self.dropout_3(x))


def dropout(x, rate):
    """Zero each unit with probability `rate` and scale the kept ones by 1/(1-rate), as nn.Dropout
    does in training. Under vmap(randomness="different") every lane draws its own mask; rate 0 keeps
    every unit and divides by 1, which is x exactly."""
    return x * (torch.rand_like(x) >= rate) / (1 - rate)


class RateLeNet(BaseLineModel):
    """DropoutModel's forward with the rate given per call, so one program runs lanes of the BaseLine
    (rate 0) and of Dropout at any rate; no rate (None): evaluation, no dropout."""

    def forward(self, x, rate=None):
        for conv in (self.conv1, self.conv2):
            x = self.pool(F.relu(conv(x)))
        x = torch.flatten(x, 1)
        for fc in (self.fc1, self.fc2):
            x = F.relu(fc(self.drop(x, rate)))
        return self.fc3(self.drop(x, rate))

    @staticmethod
    def drop(x, rate):
        return x if rate is None else dropout(x, rate)


def build_model(name, dropout_rate=0.5):
    """The network of a variant (experiment.variants), Dropout's at dropout_rate."""
    if name not in VARIANTS:
        raise ValueError(f"unknown model {name!r}")
    return DropoutModel(dropout_rate) if VARIANTS[name].has_dropout else BaseLineModel()


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
