"""Image conventions the whole project shares: which files are pictures, and the ImageNet pixel statistics every
appearance network's input is normalised with (torch-free, so any module can import it)."""
from __future__ import annotations

# Every suffix OpenCV decodes (cv2.imread reads all of these). One set serves both directions: dataset and training
# readers pick frames and crops by it (Market, MOT img1/, PETA and training folders hold .jpg/.png/.bmp, and a
# .webp or .tif crop is as readable), and reid_core.video refuses a file with one of these suffixes as a picture
# rather than a video. A tuple, so messages that list it read the same every run.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# ImageNet statistics on the 0-1 scale; networks fed 0-255 pixels scale them by 255 where they use them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
