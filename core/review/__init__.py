"""Blind A/B review: pair sets and assignment (`pairs`), the rating desk (`desk`), the
preference statistics (`stats`) and the stored results with exports (`results`).

Blindness is a security property: only `desk.PairView` reaches a rater's page, and every
function that names models requires a lead or engineer (core.auth).
"""
