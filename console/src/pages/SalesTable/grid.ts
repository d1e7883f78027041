/** The sales table's layout: rows are floors (top first), columns are stacks (the unit's
 * position on its floor, the same on every floor: 1201, 1101, 1001 are stack "01"). */

export interface GridUnit {
  id: string;
  number: string;
  floor: number;
}

/** The stack of a unit: its number without the floor in front ("1201" on 12 -> "01",
 * "12-3" -> "3", "B1-02" on -1 stays "B1-02"); a number that does not start with its floor
 * is its own stack. */
export function stackOf(number: string, floor: number): string {
  const prefix = String(floor);
  if (number.length > prefix.length && number.startsWith(prefix)) {
    const rest = number.slice(prefix.length).replace(/^[-_.\s/Ff层#]+/, "");
    if (rest) return rest;
  }
  return number;
}

const natural = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

export interface Grid<U extends GridUnit> {
  floors: number[];
  stacks: string[];
  cell: (floor: number, stack: string) => U[];
}

/** Floors from the highest (the building's floors or a unit above them) down to the lowest
 * (1, or a basement unit's), every floor listed even without units; stacks in natural order. */
export function layout<U extends GridUnit>(units: U[], buildingFloors: number): Grid<U> {
  const byCell = new Map<string, U[]>();
  const stacks = new Set<string>();
  let top = Math.max(1, buildingFloors);
  let bottom = 1;
  for (const u of units) {
    const stack = stackOf(u.number, u.floor);
    stacks.add(stack);
    const key = `${u.floor}\u0000${stack}`;
    const list = byCell.get(key);
    if (list) list.push(u);
    else byCell.set(key, [u]);
    top = Math.max(top, u.floor);
    bottom = Math.min(bottom, u.floor);
  }
  // A table of a thousand empty floors says nothing: beyond 300 rows only floors with units.
  // There is no floor 0 (1 is the ground floor, -1 the first basement) unless a unit has it.
  const zero = units.some((u) => u.floor === 0);
  let floors: number[] = [];
  if (top - bottom < 300) {
    for (let f = top; f >= bottom; f--) if (f !== 0 || zero) floors.push(f);
  } else floors = [...new Set(units.map((u) => u.floor))].sort((a, b) => b - a);
  return {
    floors,
    stacks: [...stacks].sort(natural.compare),
    cell: (floor, stack) => byCell.get(`${floor}\u0000${stack}`) ?? [],
  };
}
