"""Environment settings and the wrappers every suite shares."""
