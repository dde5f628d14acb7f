/** A batch's state, coloured by what it means to the user, with its substate (queued / running). */
export function StateBadge({ status, substate }: { status: string; substate: string | null }) {
  return (
    <span className={`badge state-${status.toLowerCase()}`} data-testid="state">
      {status}
      {substate && " "}
      {substate && <span className="substate">{substate}</span>}
    </span>
  );
}
