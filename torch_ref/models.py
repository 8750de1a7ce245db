"""The tutorial's two networks, with its module names (62,006 parameters each)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


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


def build_model(name, dropout_rate=0.5):
    if name == "baseline":
        return BaseLineModel()
    if name == "dropout":
        return DropoutModel(dropout_rate)
    raise ValueError(f"unknown model {name!r}")


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
