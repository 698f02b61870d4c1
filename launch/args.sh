# Sourced by the launch scripts: their --help, and option values that must be there.
#
#   usage_of SCRIPT        prints the comment block at the top of SCRIPT (its usage), without the #
#   value_of NAME FLAG "${2-}"
#                          prints FLAG's value, or ends the script with status 2 and "NAME: FLAG needs
#                          a value" when there is none, or the next word is another option (a
#                          negative number is a value): `--max-restarts --dry-run` took --dry-run as
#                          the count, and the job ran for real.
usage_of() { sed -n '2,/^[^#]/{/^#/{s/^# \{0,1\}//;p}}' "$1"; }
value_of() {
  if [[ -z "${3-}" || ( "$3" == -* && ! "$3" =~ ^-[0-9.] ) ]]; then
    echo "$1: $2 needs a value${3:+ (got the option $3)}" >&2
    exit 2
  fi
  printf '%s' "$3"
}
# quoted WORD…           the words as one line a shell reads back as the same words (dry runs print it)
quoted() {
  local word line=""
  for word in "$@"; do
    if [[ "$word" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then line+=" $word"; else line+=" $(printf '%q' "$word")"; fi
  done
  printf '%s' "${line# }"
}
