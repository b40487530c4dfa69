"""Tests that run the real scanner script (scanner/scan.sh) with a fake QScanner against Azurite."""
