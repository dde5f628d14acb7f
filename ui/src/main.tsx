import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { LiveContext } from "./hooks";
import { createLiveFeed } from "./live";
import "./styles.css";

const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root");
createRoot(root).render(
  <StrictMode>
    <LiveContext.Provider value={createLiveFeed()}>
      <App />
    </LiveContext.Provider>
  </StrictMode>,
);
