# usage: awk -v n=ROWS -v shift=S -v seed=K -v json=0|1 -f gen.awk
# rows of 4 iris-like features: N(mean, sd) per column, column 3 shifted by `shift` sd.
BEGIN {
  srand(seed); split("5.8 3.0 3.8 1.2", m, " "); split("0.8 0.4 1.8 0.8", s, " ")
  if (json) printf "{\"instances\": ["
  for (i = 0; i < n; i++) {
    row = ""
    for (j = 1; j <= 4; j++) {
      z = sqrt(-2 * log(1 - rand())) * cos(6.283185307179586 * rand())
      v = m[j] + s[j] * (z + (j == 3 ? shift : 0))
      row = row (j > 1 ? "," : "") sprintf("%.3f", v)
    }
    if (json) printf "%s[%s]", (i ? "," : ""), row; else print row
  }
  if (json) print "]}"
}
