"""The tutorial's LeNet with the dropout rate as an input, for the vmap engine: the networks' layers
and parameter names (torch_ref.models), so one program runs lanes of the BaseLine (rate 0) and of
Dropout at any rate, each lane with its own rate."""
import torch
import torch.nn.functional as F

from torch_ref.models import BaseLineModel


def dropout(x, rate):
    """Zero each unit with probability `rate` and scale the kept ones by 1/(1-rate), as nn.Dropout
    does in training. Under vmap(randomness="different") every lane draws its own mask; rate 0 keeps
    every unit and divides by 1, which is x exactly."""
    return x * (torch.rand_like(x) >= rate) / (1 - rate)


class RateLeNet(BaseLineModel):
    """DropoutModel's forward with the rate given per call; no rate (None): evaluation, no dropout."""

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
