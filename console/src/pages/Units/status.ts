import type { UnitStatus } from "../../gql/types";

/** Every unit status in the order of a sale, with the colour of its cell and tag. */
export const STATUSES: UnitStatus[] = [
  "PLANNED",
  "AVAILABLE",
  "ON_HOLD",
  "RESERVED",
  "SUBSCRIBED",
  "CONTRACTED",
  "SOLD",
  "DELIVERED",
];

export const STATUS_COLOURS: Record<UnitStatus, { background: string; border: string; text: string }> = {
  PLANNED: { background: "#f0f0f0", border: "#bfbfbf", text: "#595959" },
  AVAILABLE: { background: "#d9f7be", border: "#52c41a", text: "#135200" },
  ON_HOLD: { background: "#fff1b8", border: "#faad14", text: "#613400" },
  RESERVED: { background: "#bae0ff", border: "#1677ff", text: "#002c8c" },
  SUBSCRIBED: { background: "#efdbff", border: "#722ed1", text: "#22075e" },
  CONTRACTED: { background: "#ffd6e7", border: "#eb2f96", text: "#520339" },
  SOLD: { background: "#ffccc7", border: "#f5222d", text: "#5c0011" },
  DELIVERED: { background: "#d9d9d9", border: "#595959", text: "#141414" },
};

export const statusKey = (s: UnitStatus) => `inv.unitStatus.${s}` as const;
