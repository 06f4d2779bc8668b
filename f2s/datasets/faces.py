"""Procedural faces: a colour photo and the matching pencil sketch.

Both images are drawn from one geometry (head, hair, eyes, brows, nose,
mouth, pose). The photo adds what a sketch artist must interpret: skin and
hair colour, directional lighting, texture noise and a background. The sketch
is pencil on white paper: contours, hatching for hair (denser for darker hair)
and for the shadow side of the face (from the photo's light direction). So the
mapping is learnable but not a pixel filter of the photo.

Everything is deterministic in the numpy Generator passed in.
"""

import dataclasses

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from f2s.data import preprocess

HEIGHT, WIDTH = preprocess.RECORD_SHAPE
# Drawing happens at this multiple of the output size, then a box downscale
# anti-aliases the strokes.
_SUPERSAMPLE = 2


@dataclasses.dataclass(frozen=True)
class FaceParams:
  """Everything that decides one photo/sketch pair (pixels of the output)."""

  center: tuple[float, float]  # (x, y) of the head ellipse centre
  head_radii: tuple[float, float]  # (half width, half height)
  jaw: float  # 0 round chin .. 0.5 narrow chin
  roll: float  # head rotation in radians
  yaw: float  # -1 .. 1, shifts the features sideways
  skin: tuple[int, int, int]
  hair: tuple[int, int, int]
  hair_style: int  # 0 short, 1 fringe, 2 long, 3 side part
  hair_volume: float  # hair thickness beyond the skull, fraction of radius
  hairline: float  # hairline height, fraction of the half height above centre
  eye_y: float  # fraction of the half height above the centre
  eye_spacing: float  # fraction of the half width
  eye_size: float  # half width of an eye, pixels
  eye_open: float  # eye height / width
  iris: tuple[int, int, int]
  brow_gap: float  # pixels between eye top and brow
  brow_thickness: float
  brow_arch: float
  nose_length: float  # fraction of the half height below the eyes
  nose_width: float  # pixels
  mouth_width: float  # pixels
  mouth_smile: float  # pixels the corners rise
  lip: tuple[int, int, int]
  light: tuple[float, float, float]  # unit vector towards the light
  ambient: float
  background: tuple[tuple[int, int, int], tuple[int, int, int]]  # top, bottom
  shirt: tuple[int, int, int]
  noise: float  # photo noise standard deviation
  texture_seed: int  # seeds the stroke jitter and noise


def _colour(values) -> tuple[int, int, int]:
  r, g, b = (int(v) for v in np.clip(values, 0, 255))
  return r, g, b


def sample_face_params(rng: np.random.Generator) -> FaceParams:
  """Draws one face from the procedural distribution."""
  skin = np.array([224.0, 182.0, 150.0]) * rng.uniform(0.55, 1.08)
  skin = np.clip(skin + rng.normal(0, 8, 3), 40, 250)
  hair = np.array([150.0, 110.0, 70.0]) * (1.05 - rng.uniform(0.0, 1.0))
  hair = np.clip(hair + rng.normal(0, 10, 3), 10, 220)
  light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.6, 0.2), 0.8])
  light = light / np.linalg.norm(light)
  grey_bg = rng.uniform(150, 235) + rng.normal(0, 12, 3)
  return FaceParams(
      center=(100 + rng.normal(0, 3), 128 + rng.normal(0, 3)),
      head_radii=(rng.uniform(60, 72), rng.uniform(80, 92)),
      jaw=rng.uniform(0.1, 0.45),
      roll=rng.normal(0, 0.06),
      yaw=float(np.clip(rng.normal(0, 0.35), -0.8, 0.8)),
      skin=_colour(skin),
      hair=_colour(hair),
      hair_style=int(rng.integers(0, 4)),
      hair_volume=rng.uniform(0.06, 0.22),
      hairline=rng.uniform(0.55, 0.75),
      eye_y=rng.uniform(0.05, 0.18),
      eye_spacing=rng.uniform(0.36, 0.44),
      eye_size=rng.uniform(10.0, 14.0),
      eye_open=rng.uniform(0.35, 0.55),
      iris=_colour(rng.uniform(30, 120, 3)),
      brow_gap=rng.uniform(5, 11),
      brow_thickness=rng.uniform(2.5, 5.5),
      brow_arch=rng.uniform(1, 6),
      nose_length=rng.uniform(0.35, 0.5),
      nose_width=rng.uniform(9, 15),
      mouth_width=rng.uniform(20, 30),
      mouth_smile=rng.uniform(-2, 4),
      lip=_colour(skin * [0.85, 0.55, 0.55] + rng.normal(0, 8, 3)),
      light=tuple(float(v) for v in light),
      ambient=rng.uniform(0.35, 0.6),
      background=(_colour(grey_bg), _colour(grey_bg - rng.uniform(10, 50))),
      shirt=_colour(rng.uniform(20, 200, 3)),
      noise=rng.uniform(1.5, 5.0),
      texture_seed=int(rng.integers(0, 2**31 - 1)),
  )


def _ellipse(cx, cy, rx, ry, start=0.0, stop=2 * np.pi, n=48) -> np.ndarray:
  t = np.linspace(start, stop, n)
  return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _head_outline(p: FaceParams, n: int = 96) -> np.ndarray:
  """Head contour, angle 0 at the top, narrowing towards the chin."""
  a, b = p.head_radii
  t = np.linspace(0, 2 * np.pi, n, endpoint=False)
  lower = np.maximum(0.0, -np.cos(t))
  x = a * np.sin(t) * (1 - p.jaw * lower**2)
  y = -b * np.cos(t) * (1 + 0.08 * lower)
  return np.stack([p.center[0] + x, p.center[1] + y], axis=1)


def _hair_polygons(p: FaceParams) -> list[np.ndarray]:
  """Hair regions drawn over the head (back hair for long style first)."""
  cx, cy = p.center
  a, b = p.head_radii
  out_a, out_b = a * (1 + p.hair_volume), b * (1 + p.hair_volume)
  polys = []
  if p.hair_style == 2:
    # Long hair falls behind the head down to the shoulders.
    back = np.concatenate([
        _ellipse(cx, cy, out_a * 1.05, out_b, np.pi, 2 * np.pi, 32),
        [[cx + out_a * 1.1, cy + b * 1.05], [cx - out_a * 1.1, cy + b * 1.05]],
    ])
    polys.append(back)
  # Crown: outer arc over the top between the temples, then the hairline.
  side = 0.15 if p.hair_style != 2 else 0.35
  outer = _ellipse(cx, cy - b * 0.02, out_a, out_b, np.pi - side, 2 * np.pi + side, 40)
  hair_y = cy - b * p.hairline
  xs = np.linspace(outer[-1, 0] - a * 0.1, outer[0, 0] + a * 0.1, 9)
  if p.hair_style == 1:
    # Fringe: jagged edge low on the forehead.
    ys = hair_y + b * 0.25 + np.where(np.arange(9) % 2 == 0, 0.0, -b * 0.12)
    ys[0] = ys[-1] = cy - b * 0.1
  elif p.hair_style == 3:
    # Side part: hairline sweeps down to one side.
    ys = hair_y + np.linspace(-0.05, 0.35, 9) * b
    ys[0] = ys[-1] = cy - b * 0.15
  else:
    bow = np.sin(np.linspace(0, np.pi, 9))
    ys = hair_y + b * 0.35 * (1 - bow)
  polys.append(np.concatenate([outer, np.stack([xs, ys], axis=1)]))
  return polys


@dataclasses.dataclass(frozen=True)
class _Geometry:
  """Feature shapes in output pixels, rotated by the head roll."""

  head: np.ndarray
  ears: list[np.ndarray]
  neck: np.ndarray
  shoulders: np.ndarray
  hair: list[np.ndarray]
  crown: np.ndarray  # hair strokes radiate from here
  eyes: list[np.ndarray]  # almond outlines
  eye_centers: list[np.ndarray]
  iris_radius: float
  brows: list[np.ndarray]
  nose_side: np.ndarray
  nose_base: np.ndarray
  nostrils: list[np.ndarray]
  mouth_line: np.ndarray
  upper_lip: np.ndarray
  lower_lip: np.ndarray


def _geometry(p: FaceParams) -> _Geometry:
  cx, cy = p.center
  a, b = p.head_radii
  shift = p.yaw * a * 0.18
  eye_y = cy - p.eye_y * b
  eyes, centers, brows = [], [], []
  for side in (-1, 1):
    # The eye turned away from the viewer looks smaller.
    size = p.eye_size * (1 - 0.15 * p.yaw * side)
    ex = cx + shift + side * p.eye_spacing * a
    upper = _ellipse(ex, eye_y, size, size * p.eye_open, np.pi, 2 * np.pi, 16)
    lower = _ellipse(ex, eye_y, size, size * p.eye_open * 0.7, 0, np.pi, 16)
    eyes.append(np.concatenate([upper, lower]))
    centers.append(np.array([ex, eye_y]))
    brow_y = eye_y - size * p.eye_open - p.brow_gap
    t = np.linspace(-1, 1, 7)
    bx = ex + side * t * size * 1.25 + side * 2
    by = brow_y - p.brow_arch * (1 - t**2)
    brows.append(np.stack([bx, by], axis=1))
  nose_tip_y = eye_y + p.nose_length * b
  nx = cx + shift * 1.4
  light_side = -1 if p.light[0] > 0 else 1  # nose side in shadow
  nose_side = np.array([
      [cx + shift + light_side * 4, eye_y + 6],
      [nx + light_side * p.nose_width * 0.35, nose_tip_y - b * 0.15],
      [nx + light_side * p.nose_width * 0.55, nose_tip_y - 2],
  ])
  t = np.linspace(-1, 1, 9)
  nose_base = np.stack(
      [nx + t * p.nose_width * 0.6, nose_tip_y + 2 + 2.5 * (1 - t**2)], axis=1
  )
  nostrils = [
      _ellipse(nx + s * p.nose_width * 0.3, nose_tip_y + 1, 2.2, 1.3, n=12)
      for s in (-1, 1)
  ]
  chin_y = cy + b
  mouth_y = nose_tip_y + (chin_y - nose_tip_y) * 0.38
  mx = cx + shift * 1.2
  t = np.linspace(-1, 1, 13)
  w = p.mouth_width
  mouth_line = np.stack([mx + t * w, mouth_y - p.mouth_smile * t**2], axis=1)
  upper_top = np.stack(
      [mx + t * w * 0.95, mouth_y - 4.5 * (1 - t**2) + 1.5 * np.exp(-(t * 5) ** 2)
       - p.mouth_smile * t**2], axis=1
  )
  lower_bot = np.stack(
      [mx + t * w * 0.9, mouth_y + 6 * (1 - t**2) - p.mouth_smile * t**2], axis=1
  )
  upper_lip = np.concatenate([upper_top, mouth_line[::-1]])
  lower_lip = np.concatenate([mouth_line, lower_bot[::-1]])
  ears = [
      _ellipse(cx + s * a * 0.97, eye_y + b * 0.12, a * 0.13, b * 0.2, n=24)
      for s in (-1, 1)
  ]
  neck = np.array([
      [cx - a * 0.45, cy + b * 0.5], [cx + a * 0.45, cy + b * 0.5],
      [cx + a * 0.5, HEIGHT + 5], [cx - a * 0.5, HEIGHT + 5],
  ])
  shoulders = _ellipse(cx, HEIGHT + 40, a * 1.9, 70, np.pi, 2 * np.pi, 40)
  crown = np.array([cx + (a * 0.3 if p.hair_style == 3 else 0.0), cy - b * 0.75])

  def rot(pts: np.ndarray) -> np.ndarray:
    c, s = np.cos(p.roll), np.sin(p.roll)
    d = pts - np.array([cx, cy])
    turned = np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], 1)
    return turned + [cx, cy]

  return _Geometry(
      head=rot(_head_outline(p)),
      ears=[rot(e) for e in ears],
      neck=neck,  # the neck and shoulders do not roll with the head
      shoulders=shoulders,
      hair=[rot(h) for h in _hair_polygons(p)],
      crown=rot(crown[None])[0],
      eyes=[rot(e) for e in eyes],
      eye_centers=[rot(c[None])[0] for c in centers],
      iris_radius=p.eye_size * p.eye_open * 0.95,
      brows=[rot(x) for x in brows],
      nose_side=rot(nose_side),
      nose_base=rot(nose_base),
      nostrils=[rot(x) for x in nostrils],
      mouth_line=rot(mouth_line),
      upper_lip=rot(upper_lip),
      lower_lip=rot(lower_lip),
  )


def _pts(points: np.ndarray) -> list[tuple[float, float]]:
  return [tuple(q) for q in (points * _SUPERSAMPLE).tolist()]


def _mask(polys: list[np.ndarray]) -> Image.Image:
  mask = Image.new('L', (WIDTH * _SUPERSAMPLE, HEIGHT * _SUPERSAMPLE), 0)
  draw = ImageDraw.Draw(mask)
  for poly in polys:
    draw.polygon(_pts(poly), fill=255)
  return mask


def _small_mask(polys: list[np.ndarray]) -> np.ndarray:
  """Anti-aliased coverage in [0, 1] at the output size."""
  mask = _mask(polys).resize((WIDTH, HEIGHT), Image.Resampling.BOX)
  return np.asarray(mask, np.float64) / 255


def lighting(p: FaceParams) -> np.ndarray:
  """Per-pixel light factor (HEIGHT, WIDTH) from an ellipsoid head model."""
  geo = _geometry(p)
  y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
  cx, cy = p.center
  c, s = np.cos(-p.roll), np.sin(-p.roll)
  dx, dy = x - cx, y - cy
  nx = np.clip((c * dx - s * dy) / (p.head_radii[0] * 1.1), -1, 1)
  ny = np.clip((s * dx + c * dy) / (p.head_radii[1] * 1.1), -1, 1)
  nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
  norm = np.sqrt(nx**2 + ny**2 + nz**2) + 1e-6
  lx, ly, lz = p.light
  diffuse = np.clip((nx * lx + ny * ly + nz * lz) / norm, 0, 1)
  head = p.ambient + (1 - p.ambient) * diffuse
  # Outside the head only a gentle sideways gradient.
  outside = 0.85 + 0.15 * lx * np.clip(dx / WIDTH * 2, -1, 1)
  inside = _small_mask([geo.head] + geo.ears + geo.hair)
  return inside * head + (1 - inside) * outside


def render_photo(p: FaceParams) -> np.ndarray:
  """Colour photo, uint8 (HEIGHT, WIDTH, 3)."""
  rng = np.random.default_rng(p.texture_seed)
  geo = _geometry(p)
  big = (WIDTH * _SUPERSAMPLE, HEIGHT * _SUPERSAMPLE)
  ramp = np.linspace(0, 1, big[1])[:, None, None]
  top, bottom = np.array(p.background[0]), np.array(p.background[1])
  bg = (1 - ramp) * top + ramp * bottom
  image = Image.fromarray(np.broadcast_to(bg, (big[1], big[0], 3)).astype(np.uint8))
  draw = ImageDraw.Draw(image)
  hair = p.hair
  dark_skin = _colour(np.array(p.skin) * 0.8)
  if p.hair_style == 2:
    draw.polygon(_pts(geo.hair[0]), fill=hair)
  draw.polygon(_pts(geo.neck), fill=dark_skin)
  draw.polygon(_pts(geo.shoulders), fill=p.shirt)
  for ear in geo.ears:
    draw.polygon(_pts(ear), fill=dark_skin)
  draw.polygon(_pts(geo.head), fill=p.skin)
  for eye, center in zip(geo.eyes, geo.eye_centers):
    eye_mask = _mask([eye])
    layer = Image.new('RGB', big, (235, 232, 228))
    ldraw = ImageDraw.Draw(layer)
    r = geo.iris_radius
    ldraw.polygon(_pts(_ellipse(*center, r, r, n=20)), fill=p.iris)
    ldraw.polygon(_pts(_ellipse(*center, r * 0.45, r * 0.45, n=12)), fill=(10, 10, 10))
    image.paste(layer, (0, 0), eye_mask)
    draw.line(_pts(eye[:16]), fill=(30, 25, 25), width=3 * _SUPERSAMPLE // 2)
  brow_colour = _colour(np.array(hair) * 0.8)
  for brow in geo.brows:
    draw.line(_pts(brow), fill=brow_colour, width=int(p.brow_thickness * _SUPERSAMPLE))
  shadow = _colour(np.array(p.skin) * 0.78)
  draw.line(_pts(geo.nose_side), fill=shadow, width=3 * _SUPERSAMPLE)
  for nostril in geo.nostrils:
    draw.polygon(_pts(nostril), fill=_colour(np.array(p.skin) * 0.45))
  draw.polygon(_pts(geo.upper_lip), fill=_colour(np.array(p.lip) * 0.85))
  draw.polygon(_pts(geo.lower_lip), fill=p.lip)
  draw.line(
      _pts(geo.mouth_line), fill=_colour(np.array(p.lip) * 0.45), width=_SUPERSAMPLE
  )
  draw.polygon(_pts(geo.hair[-1]), fill=hair)
  image = image.filter(ImageFilter.GaussianBlur(0.8)).resize(
      (WIDTH, HEIGHT), Image.Resampling.BOX
  )
  pixels = np.asarray(image, dtype=np.float64)
  pixels = pixels * lighting(p)[..., None]
  # Skin/hair texture and sensor noise.
  pixels += rng.normal(0, p.noise, pixels.shape)
  return np.clip(pixels, 0, 255).astype(np.uint8)


def _pencil(
    draw: ImageDraw.ImageDraw,
    points: np.ndarray,
    rng: np.random.Generator,
    grey: int,
    width: int,
    passes: int = 2,
    jitter: float = 0.5,
) -> None:
  """A pencil line: a few slightly offset passes of a polyline."""
  for _ in range(passes):
    offset = rng.normal(0, jitter, points.shape)
    shade = int(np.clip(grey + rng.normal(0, 12), 0, 255))
    draw.line(_pts(points + offset), fill=shade, width=width)


def _hatch_lines(
    rng: np.random.Generator, region: np.ndarray, angle: float, spacing: float
) -> list[np.ndarray]:
  """Parallel strokes across the bounding box of `region` at `angle`."""
  lo, hi = region.min(0) - 5, region.max(0) + 5
  centre, half = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
  d = np.array([np.cos(angle), np.sin(angle)])
  n = np.array([-d[1], d[0]])
  lines = []
  for off in np.arange(-half, half, spacing):
    start = centre + n * (off + rng.normal(0, spacing * 0.15)) - d * half
    lines.append(np.stack([start, start + d * 2 * half]))
  return lines


def render_sketch(p: FaceParams) -> np.ndarray:
  """Pencil sketch on white paper, uint8 (HEIGHT, WIDTH, 1)."""
  rng = np.random.default_rng(p.texture_seed + 1)
  geo = _geometry(p)
  big = (WIDTH * _SUPERSAMPLE, HEIGHT * _SUPERSAMPLE)
  white = Image.new('L', big, 255)
  sketch = white.copy()

  # Shadow side of the face: light diagonal hatching where the photo is dark.
  light = lighting(p)
  shade_mask = Image.fromarray(
      ((light < p.ambient + 0.3 * (1 - p.ambient)) * 255).astype(np.uint8)
  ).resize(big, Image.Resampling.BILINEAR)
  face_mask = ImageChops.multiply(shade_mask, _mask([geo.head]))
  face_mask = ImageChops.darker(face_mask, ImageChops.invert(_mask(geo.hair[-1:])))
  layer = white.copy()
  ldraw = ImageDraw.Draw(layer)
  # Strokes lean away from the light, as a right-handed artist would shade.
  angle = np.pi / 2 + np.pi * 0.3 * np.sign(p.light[0] or 1.0)
  for line in _hatch_lines(rng, geo.head, angle, 3.0):
    ldraw.line(_pts(line), fill=int(rng.uniform(170, 200)), width=1)
  sketch = ImageChops.darker(sketch, Image.composite(layer, white, face_mask))

  # Hair: strokes radiating from the crown, denser and darker for dark hair.
  darkness = 1 - np.mean(p.hair) / 255
  head_mask = _mask([geo.head])
  # Long back hair shows only around the head; the crown covers it.
  hair_mask = ImageChops.darker(_mask(geo.hair[:-1]), ImageChops.invert(head_mask))
  hair_mask = ImageChops.lighter(hair_mask, _mask(geo.hair[-1:]))
  layer = white.copy()
  ldraw = ImageDraw.Draw(layer)
  lo, hi = np.concatenate(geo.hair).min(0), np.concatenate(geo.hair).max(0)
  for _ in range(int(150 + 700 * darkness**1.5)):
    start = rng.uniform(lo, hi)
    direction = start - geo.crown
    direction = direction / (np.linalg.norm(direction) + 1e-6)
    direction = direction + rng.normal(0, 0.15, 2)
    length = rng.uniform(8, 25)
    mid = start + direction * length * 0.5 + rng.normal(0, 1.0, 2)
    stroke = np.stack([start, mid, start + direction * length])
    grey = int(np.clip(200 - 170 * darkness + rng.normal(0, 20), 20, 235))
    ldraw.line(_pts(stroke), fill=grey, width=1 + (rng.random() < 0.3))
  sketch = ImageChops.darker(sketch, Image.composite(layer, white, hair_mask))

  contour = int(70 + 60 * rng.random())
  # Body lines (ears, neck, shoulders, back hair) are hidden behind the head.
  layer = white.copy()
  ldraw = ImageDraw.Draw(layer)
  for ear in geo.ears:
    _pencil(ldraw, ear, rng, contour + 20, 2)
  _pencil(ldraw, geo.neck[[0, 3]], rng, contour + 30, 2, passes=1)
  _pencil(ldraw, geo.neck[[1, 2]], rng, contour + 30, 2, passes=1)
  _pencil(ldraw, geo.shoulders, rng, contour + 40, 2, passes=1)
  for hair in geo.hair[:-1]:
    closed = np.concatenate([hair, hair[:1]])
    _pencil(ldraw, closed, rng, contour, 2, passes=1, jitter=0.8)
  body_mask = ImageChops.invert(ImageChops.lighter(head_mask, _mask(geo.hair[-1:])))
  sketch = ImageChops.darker(sketch, Image.composite(layer, white, body_mask))

  draw = ImageDraw.Draw(sketch)
  # Only the lower head contour: the hair outlines the top.
  _pencil(draw, geo.head[30:67], rng, contour, 2)
  crown = geo.hair[-1]
  closed = np.concatenate([crown, crown[:1]])
  _pencil(draw, closed, rng, contour, 2, passes=1, jitter=0.8)
  for eye, center in zip(geo.eyes, geo.eye_centers):
    _pencil(draw, eye[:16], rng, 40, 3)  # upper lid, dark
    _pencil(draw, eye[16:], rng, 120, 1, passes=1)
    r = geo.iris_radius
    iris_grey = int(90 + 60 * np.mean(p.iris) / 255)
    draw.polygon(_pts(_ellipse(*center, r, r * 0.9, n=16)), fill=iris_grey)
    draw.polygon(_pts(_ellipse(*center, r * 0.45, r * 0.45, n=10)), fill=20)
  brow_grey = int(180 - 120 * darkness)
  for brow in geo.brows:
    # Short slanted strokes along the brow, growing outwards.
    along = np.linspace(0, len(brow) - 1, int(6 + 2 * p.brow_thickness))
    bases = np.stack(
        [np.interp(along, np.arange(len(brow)), brow[:, k]) for k in (0, 1)], 1
    )
    outward = np.sign(brow[-1, 0] - brow[0, 0])
    half = p.brow_thickness / 2
    for base in bases:
      stroke = np.stack([base + [0, half], base + [outward * 3, -half]])
      _pencil(draw, stroke, rng, brow_grey, 2, passes=1, jitter=0.3)
  _pencil(draw, geo.nose_side, rng, 130, 2, passes=1)
  _pencil(draw, geo.nose_base, rng, 110, 2, passes=1)
  for nostril in geo.nostrils:
    draw.polygon(_pts(nostril), fill=60)
  _pencil(draw, geo.mouth_line, rng, 45, 3)
  _pencil(draw, geo.upper_lip[:13], rng, 150, 1, passes=1)
  _pencil(draw, geo.lower_lip[13:][3:-3], rng, 160, 2, passes=1)

  small = np.asarray(sketch.resize((WIDTH, HEIGHT), Image.Resampling.BOX), np.float64)
  # Paper grain, kept faint so the paper stays near white.
  small = small - np.abs(rng.normal(0, 2.0, small.shape))
  return np.clip(small, 0, 255).astype(np.uint8)[..., None]


def render_pair(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
  """(photo, sketch) of example `index` for `seed`, independent of counts."""
  params = sample_face_params(np.random.default_rng([seed, index]))
  return render_photo(params), render_sketch(params)
