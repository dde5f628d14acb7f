/** Previous / next buttons under a paged list, with what the page shows. */
export function Pager(props: {
  label: string;
  previous?: () => void;
  next?: () => void;
  previousLabel?: string;
  nextLabel?: string;
  testId: string;
}) {
  if (!props.previous && !props.next) return null;
  return (
    <div className="pager small" data-testid={props.testId}>
      <button type="button" className="btn" disabled={!props.previous} onClick={props.previous}>
        {props.previousLabel ?? "Previous"}
      </button>
      <span className="muted">{props.label}</span>
      <button type="button" className="btn" disabled={!props.next} onClick={props.next}>
        {props.nextLabel ?? "Next"}
      </button>
    </div>
  );
}
